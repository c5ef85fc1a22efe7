-- form: mariadb
CREATE TABLE `p_key` (
  id int NOT NULL,
  k varchar(20) NOT NULL,
  PRIMARY KEY (id, k)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY KEY (k) PARTITIONS 4
