-- form: mysql8
CREATE TABLE `tokens` (
  `id` int NOT NULL,
  `token` varchar(36) DEFAULT (uuid()),
  `expires` datetime DEFAULT ((now() + interval 1 day)),
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
