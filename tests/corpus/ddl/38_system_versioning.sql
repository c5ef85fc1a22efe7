-- form: mariadb
-- expect: blocking
-- rules: table.system-versioning
CREATE TABLE `versioned` (
  id int NOT NULL,
  v int DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 WITH SYSTEM VERSIONING
