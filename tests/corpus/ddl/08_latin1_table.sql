-- form: mariadb
-- rules: charset.latin1-to-utf8mb4, collation.latin1_swedish_ci-to-utf8mb4_general_ci
CREATE TABLE `legacy` (
  id int NOT NULL,
  name varchar(100) NOT NULL DEFAULT '',
  code char(2) COLLATE latin1_bin DEFAULT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=latin1
