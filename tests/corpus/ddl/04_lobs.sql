-- form: mariadb
CREATE TABLE `lobs` (
  id int NOT NULL,
  tt tinytext,
  t text NOT NULL,
  mt mediumtext,
  lt longtext,
  tb tinyblob,
  b blob,
  mb mediumblob,
  lb longblob NOT NULL,
  PRIMARY KEY (id),
  KEY ix_t (t(20))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
