-- form: mariadb
-- rules: column.compressed
CREATE TABLE `ccol` (
  id int NOT NULL,
  big blob COMPRESSED DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
