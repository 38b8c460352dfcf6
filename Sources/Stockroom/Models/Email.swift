/// The one form of an email address that decides whether two spellings are the same
/// account: surrounding spaces trimmed, lowercased. Login and registration compare in it
/// (the database's unique index is on `lower(email)`), and so does anything that counts
/// attempts per email, such as a login throttle: `" Ann@X.com"` and `"ann@x.com "` are
/// one account, and one counter.
public enum Email {
    public static func normalized(_ email: String) -> String {
        email.trimmingSpaces().lowercased()
    }
}
