"""Downstream protocols: linear SVM, few-shot, part segmentation, cross-modal retrieval."""
