-- form: mysql8
CREATE TABLE `posts` (
  `id` int NOT NULL,
  `title` varchar(200) NOT NULL,
  `body` text,
  PRIMARY KEY (`id`),
  KEY `ix_title` (`title`) /*!80000 INVISIBLE */,
  FULLTEXT KEY `ft_body` (`body`) /*!50100 WITH PARSER `ngram` */ 
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci
