-- form: mariadb
CREATE TABLE `nums` (
  id int NOT NULL,
  amount decimal(19,4) NOT NULL DEFAULT 0.0000,
  ratio decimal(5,2) unsigned DEFAULT 1.50,
  f float DEFAULT NULL,
  fmd float(7,3) unsigned zerofill DEFAULT NULL,
  d double NOT NULL DEFAULT 1e10,
  dmd double(12,4) DEFAULT NULL,
  r real DEFAULT NULL,
  bits bit(5) DEFAULT b'10101',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
