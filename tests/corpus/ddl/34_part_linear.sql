-- form: mariadb
-- rules: partition.linear
CREATE TABLE `p_linear` (
  id int NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY LINEAR HASH (id) PARTITIONS 4
