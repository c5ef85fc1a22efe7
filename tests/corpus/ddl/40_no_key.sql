-- form: mariadb
CREATE TABLE `nokey` (
  a int DEFAULT NULL,
  b varchar(10) DEFAULT NULL,
  KEY ix_a (a)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
