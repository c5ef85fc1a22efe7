-- form: mariadb
CREATE TABLE `gen` (
  id int NOT NULL,
  price decimal(10,2) NOT NULL,
  qty int NOT NULL,
  total decimal(12,2) AS (price * qty) STORED,
  label varchar(40) AS (concat('#', id)) VIRTUAL,
  PRIMARY KEY (id),
  KEY ix_total (total)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
