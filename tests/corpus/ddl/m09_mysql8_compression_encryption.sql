-- form: mysql8
-- rules: table-option.compression, table-option.encryption
CREATE TABLE `secrets` (
  `id` int NOT NULL,
  `v` varbinary(255) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMPRESSION='zlib' ENCRYPTION='Y'
