-- form: mariadb
CREATE TABLE `p_hash` (
  id int NOT NULL,
  v varchar(10) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY HASH (id) PARTITIONS 8
