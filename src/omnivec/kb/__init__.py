"""Knowledge base: index a folder of documents, images, recordings and videos; search it with text and images."""
