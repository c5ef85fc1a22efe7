-- form: mariadb
-- rules: engine.other, table-option.storage
CREATE TABLE `ariat` (
  id int NOT NULL,
  v varchar(10) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=Aria DEFAULT CHARSET=utf8mb4 PAGE_CHECKSUM=1 TRANSACTIONAL=1
