-- form: mariadb
-- rules: partition.option
CREATE TABLE `p_comment` (
  id int NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY RANGE (id) (
  PARTITION p0 VALUES LESS THAN (1000) COMMENT = 'hot',
  PARTITION p1 VALUES LESS THAN MAXVALUE COMMENT = 'cold'
)
