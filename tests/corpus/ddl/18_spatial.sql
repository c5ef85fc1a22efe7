-- form: mariadb
CREATE TABLE `places` (
  id int NOT NULL,
  g geometry NOT NULL,
  p point NOT NULL,
  ls linestring DEFAULT NULL,
  pg polygon DEFAULT NULL,
  mp multipoint DEFAULT NULL,
  mls multilinestring DEFAULT NULL,
  mpg multipolygon DEFAULT NULL,
  gc geometrycollection DEFAULT NULL,
  PRIMARY KEY (id),
  SPATIAL KEY sp_p (p)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
