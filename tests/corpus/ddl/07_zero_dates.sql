-- form: mariadb
-- rules: default.zero-date
CREATE TABLE `zerod` (
  id int NOT NULL,
  d date NOT NULL DEFAULT '0000-00-00',
  dt datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
