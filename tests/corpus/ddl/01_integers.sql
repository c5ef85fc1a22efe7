-- form: mariadb
CREATE TABLE `ints` (
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  t tinyint(4) NOT NULL DEFAULT -1,
  tu tinyint unsigned zerofill DEFAULT 7,
  s smallint(6) DEFAULT NULL,
  m mediumint(8) unsigned NOT NULL DEFAULT 0,
  i int(11) DEFAULT 42,
  b bigint(20) DEFAULT NULL,
  flag boolean NOT NULL DEFAULT false,
  PRIMARY KEY (id)
) ENGINE=InnoDB AUTO_INCREMENT=1001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
