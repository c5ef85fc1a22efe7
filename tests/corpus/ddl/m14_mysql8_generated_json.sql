-- form: mysql8
CREATE TABLE `profiles` (
  `id` int NOT NULL,
  `doc` json NOT NULL,
  `name` varchar(100) GENERATED ALWAYS AS (json_unquote(json_extract(`doc`,_utf8mb4'$.name'))) VIRTUAL,
  `age` int GENERATED ALWAYS AS (json_extract(`doc`,_utf8mb4'$.age')) STORED,
  PRIMARY KEY (`id`),
  KEY `ix_name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
