-- form: mariadb
CREATE TABLE `exprdef` (
  id int NOT NULL,
  u varchar(36) DEFAULT uuid(),
  n int DEFAULT (1 + 1),
  r double DEFAULT rand(),
  d date DEFAULT curdate(),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
