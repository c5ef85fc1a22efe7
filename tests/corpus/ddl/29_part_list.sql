-- form: mariadb
CREATE TABLE `p_list` (
  id int NOT NULL,
  region int NOT NULL,
  PRIMARY KEY (id, region)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY LIST (region) (
  PARTITION p_eu VALUES IN (1, 2, 3),
  PARTITION p_us VALUES IN (4, 5),
  PARTITION p_as VALUES IN (6, 7, 8)
)
