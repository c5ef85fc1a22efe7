-- form: mariadb
-- expect: blocking
-- rules: auto-increment.grouped
CREATE TABLE `animals` (
  grp enum('fish','mammal','bird') NOT NULL,
  id mediumint NOT NULL AUTO_INCREMENT,
  name char(30) NOT NULL,
  PRIMARY KEY (grp, id)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4
