-- form: mysql8
-- rules: spatial.srid
CREATE TABLE `geo` (
  `id` int NOT NULL,
  `loc` point NOT NULL /*!80003 SRID 4326 */,
  PRIMARY KEY (`id`),
  SPATIAL KEY `sp_loc` (`loc`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
