-- form: mariadb
CREATE TABLE `we``ird tab` (
  `id` int NOT NULL COMMENT 'primary, with a ''quote'' and ; semicolon',
  `sélect` varchar(30) DEFAULT 'a,b) PARTITION BY',
  `key` int DEFAULT NULL,
  `order` int DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix ``x``` (`key`, `order`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='/*!50100 not a version comment */'
