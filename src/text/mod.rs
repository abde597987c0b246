//! Text side of TExplain: tokenizers for the language model, dominant words of explanations (paper section 2),
//! and word clouds (paper Figure 1).
pub mod tokenizer;
pub mod wordcloud;
pub mod words;
