-- form: mysql8
CREATE TABLE `orders` (
  `region` varchar(8) NOT NULL,
  `id` bigint NOT NULL,
  PRIMARY KEY (`region`,`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
/*!50500 PARTITION BY RANGE  COLUMNS(`region`)
(PARTITION p_a VALUES LESS THAN ('m') ENGINE = InnoDB,
 PARTITION p_z VALUES LESS THAN (MAXVALUE) ENGINE = InnoDB) */
