#pragma once
// Porter stemmer exactly as NLTK's PorterStemmer() in its default
// NLTK_EXTENSIONS mode, because that is what rouge_score's use_stemmer=True
// instantiates. Input: a lowercase ASCII word.
#include <string>
#include <string_view>

namespace specsteer::eval {

std::string porter_stem(std::string_view word);

}  // namespace specsteer::eval
