-- form: mariadb
CREATE TABLE `hidden` (
  id int NOT NULL,
  secret varchar(20) DEFAULT 'x' INVISIBLE,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
