-- form: mariadb
-- rules: partition.kept
CREATE TABLE `p_range` (
  id bigint NOT NULL,
  created date NOT NULL,
  amount decimal(10,2) DEFAULT NULL,
  PRIMARY KEY (id, created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE (year(created)) (
  PARTITION p2023 VALUES LESS THAN (2024),
  PARTITION p2024 VALUES LESS THAN (2025),
  PARTITION pmax VALUES LESS THAN MAXVALUE
)
