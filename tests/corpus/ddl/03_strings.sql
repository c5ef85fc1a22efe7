-- form: mariadb
CREATE TABLE `strs` (
  id int NOT NULL,
  c char(3) NOT NULL DEFAULT 'abc',
  v varchar(255) DEFAULT 'it''s "quoted" \\ backslash',
  bn binary(16) DEFAULT NULL,
  vb varbinary(64) DEFAULT 'x',
  e enum('new','paid','void') NOT NULL DEFAULT 'new',
  st set('a','b','c') DEFAULT 'a,c',
  u varchar(20) DEFAULT 'żółw ☃',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
