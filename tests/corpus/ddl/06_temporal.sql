-- form: mariadb
CREATE TABLE `times` (
  id int NOT NULL,
  d date DEFAULT '2020-01-01',
  dt datetime(6) NOT NULL DEFAULT current_timestamp(6),
  ts timestamp(3) NOT NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3),
  ts0 timestamp NULL DEFAULT NULL,
  t time(2) DEFAULT '12:34:56.78',
  y year(4) DEFAULT 2024,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
