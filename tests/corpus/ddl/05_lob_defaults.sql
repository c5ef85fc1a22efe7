-- form: mariadb
-- rules: default.lob
CREATE TABLE `lobdef` (
  id int NOT NULL,
  note text DEFAULT 'none',
  payload blob DEFAULT 'x',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
