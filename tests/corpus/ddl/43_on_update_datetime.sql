-- form: mariadb
CREATE TABLE `audit` (
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  created_at datetime NOT NULL DEFAULT current_timestamp(),
  updated_at datetime DEFAULT NULL ON UPDATE current_timestamp(),
  actor varchar(64) NOT NULL DEFAULT 'system',
  PRIMARY KEY (id),
  KEY ix_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
