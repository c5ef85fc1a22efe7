-- form: mariadb
-- rules: collation.utf8mb4_uca1400_ai_ci-to-utf8mb4_general_ci
CREATE TABLE `uca` (
  id int NOT NULL,
  name varchar(50) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci
