package textidx

// stopWords are common English words that carry little meaning for search.
// They are matched after lower-casing and the apostrophe rules (so "don't"
// is "dont" and "he's" is "he"), and before stemming. A removed stop word
// still takes a position, so that a phrase does not match across it.
var stopWords = newWordSet([]string{
	"a", "about", "above", "after", "again", "against", "all", "also", "am", "an",
	"and", "any", "are", "arent", "as", "at", "be", "because", "been", "before",
	"being", "below", "between", "both", "but", "by", "can", "cannot", "cant", "could",
	"couldnt", "did", "didnt", "do", "does", "doesnt", "doing", "dont", "down", "during",
	"each", "either", "else", "ever", "every", "few", "for", "from", "further", "had",
	"hadnt", "has", "hasnt", "have", "havent", "having", "he", "her", "here", "hers",
	"herself", "him", "himself", "his", "how", "however", "i", "if",
	"im", "in", "into", "is", "isnt", "it", "its", "itself", "ive", "just",
	"me", "more", "most", "much", "must", "mustnt", "my", "myself", "neither", "no",
	"nor", "not", "now", "of", "off", "often", "on", "once", "only", "or",
	"other", "ought", "our", "ours", "ourselves", "out", "over", "own", "same", "shall",
	"shant", "she", "should", "shouldnt", "since", "so", "some", "such", "than", "that",
	"the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "theyd",
	"theyll", "theyre", "theyve", "this", "those", "though", "through", "thus", "to", "too",
	"under", "until", "up", "upon", "us", "very", "was", "wasnt", "we",
	"were", "werent", "weve", "what", "when", "where", "whether", "which", "while",
	"who", "whom", "whose", "why", "will", "with", "within", "without", "wont", "would",
	"wouldnt", "yet", "you", "youd", "youll", "your", "youre", "yours", "yourself", "yourselves",
	"youve",
})

// isStopWord reports whether the lower-cased token w is a stop word.
func isStopWord(w []byte) bool {
	if len(w) > stopWordBytesMax {
		return false
	}
	return stopWords.index(w) >= 0
}

// stopWordBytesMax is the length of the longest stop word ("ourselves",
// "themselves", "yourselves"): longer tokens skip the lookup.
const stopWordBytesMax = 10
