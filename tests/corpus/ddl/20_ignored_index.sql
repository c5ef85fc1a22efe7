-- form: mariadb
-- rules: index.ignored-to-invisible
CREATE TABLE `ign` (
  id int NOT NULL,
  a int DEFAULT NULL,
  PRIMARY KEY (id),
  KEY ix_a (a) IGNORED
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
