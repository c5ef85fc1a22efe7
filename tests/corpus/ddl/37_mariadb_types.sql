-- form: mariadb
-- rules: type.mariadb-inet6, type.mariadb-inet4, type.mariadb-uuid
CREATE TABLE `net` (
  id int NOT NULL,
  ip6 inet6 DEFAULT NULL,
  ip4 inet4 NOT NULL,
  u uuid DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
