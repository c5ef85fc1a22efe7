-- form: mariadb
-- rules: charset.ascii-to-utf8mb4, charset.utf8mb3-to-utf8mb4, collation.utf8mb4_unicode_ci-to-utf8mb4_general_ci
CREATE TABLE `mixed` (
  id int NOT NULL,
  a varchar(10) CHARACTER SET ascii DEFAULT NULL,
  u3 varchar(10) CHARACTER SET utf8mb3 DEFAULT NULL,
  uc varchar(10) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  ub varchar(10) COLLATE utf8mb4_bin DEFAULT NULL,
  bi varchar(10) CHARACTER SET binary DEFAULT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
