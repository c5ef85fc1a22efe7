-- form: mysql8
-- rules: partition.key-algorithm
CREATE TABLE `sessions` (
  `sid` varchar(64) NOT NULL,
  `data` blob,
  PRIMARY KEY (`sid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
/*!50100 PARTITION BY KEY ALGORITHM = 2 (sid)
PARTITIONS 16 */
