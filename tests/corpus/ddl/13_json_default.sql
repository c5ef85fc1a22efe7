-- form: mariadb
-- rules: default.lob, type.mariadb-json
CREATE TABLE `jdef` (
  id int NOT NULL,
  attrs json DEFAULT '{}',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
