-- form: mariadb
-- rules: engine.other
CREATE TABLE `oldlog` (
  id int NOT NULL AUTO_INCREMENT,
  msg varchar(200) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4 PACK_KEYS=1 DELAY_KEY_WRITE=1 CHECKSUM=1
