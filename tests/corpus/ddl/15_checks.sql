-- form: mariadb
CREATE TABLE `checked` (
  id int NOT NULL,
  qty int NOT NULL CHECK (qty >= 0),
  lo int DEFAULT NULL,
  hi int DEFAULT NULL,
  PRIMARY KEY (id),
  CONSTRAINT lo_le_hi CHECK (lo <= hi)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
