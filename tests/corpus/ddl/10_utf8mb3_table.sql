-- form: mariadb
-- rules: charset.utf8mb3-to-utf8mb4, collation.utf8mb3_general_ci-to-utf8mb4_general_ci
CREATE TABLE `u3` (
  id int NOT NULL,
  name varchar(50) DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3
