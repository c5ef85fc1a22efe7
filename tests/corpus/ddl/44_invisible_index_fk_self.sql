-- form: mariadb
CREATE TABLE `tree` (
  id int NOT NULL,
  parent_id int DEFAULT NULL,
  PRIMARY KEY (id),
  KEY ix_parent (parent_id),
  CONSTRAINT fk_tree FOREIGN KEY (parent_id) REFERENCES tree (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
