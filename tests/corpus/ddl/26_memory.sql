-- form: mariadb
-- rules: engine.other
CREATE TABLE `sess` (
  id int NOT NULL,
  token varchar(64) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_token (token) USING HASH
) ENGINE=MEMORY DEFAULT CHARSET=utf8mb4
