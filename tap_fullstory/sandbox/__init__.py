"""The sandbox: a FullStory-compatible server on loopback (Data Export, Segment Export and
the account API) serving one generated account."""
