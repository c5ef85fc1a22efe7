-- form: mysql8
-- rules: index.desc
CREATE TABLE `events` (
  `id` bigint NOT NULL,
  `payload` json DEFAULT NULL,
  `created` datetime(3) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_created_desc` (`created` DESC),
  KEY `ix_func` ((year(`created`)))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
