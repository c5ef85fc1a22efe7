-- form: mysql8
CREATE TABLE `limits` (
  `id` int NOT NULL,
  `lo` int DEFAULT NULL,
  `hi` int DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `limits_chk_1` CHECK ((`lo` <= `hi`)),
  CONSTRAINT `limits_chk_2` CHECK ((`lo` >= 0)) /*!80016 NOT ENFORCED */
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
