-- form: mariadb
-- rules: type.mariadb-json
CREATE TABLE `docs` (
  id int NOT NULL,
  doc json DEFAULT NULL,
  meta json NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
