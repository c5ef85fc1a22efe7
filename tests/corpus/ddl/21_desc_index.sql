-- form: mariadb
-- rules: index.desc
CREATE TABLE `feed` (
  id bigint NOT NULL,
  user_id int NOT NULL,
  created datetime NOT NULL,
  PRIMARY KEY (id),
  KEY ix_user_created (user_id, created DESC)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
