-- form: mysql8
-- rules: default.lob
CREATE TABLE `prefs` (
  `id` int NOT NULL,
  `settings` json DEFAULT (json_object()),
  `tags` json NOT NULL DEFAULT (_utf8mb4'[]'),
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
