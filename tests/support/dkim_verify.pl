#!/usr/bin/perl
# Verifies every DKIM signature of the message on stdin with Mail::DKIM (an implementation
# independent of dkimpy), asking the loopback DNS server on the port given as argument.
# Prints one line per signature ("pass d=... s=... a=...") and "RESULT <overall>".
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::Resolver;

my $port = shift or die "usage: dkim_verify.pl PORT < message\n";
my $resolver = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port,
                                       recurse => 1, retry => 1, udp_timeout => 5);
Mail::DKIM::DNS::resolver($resolver);
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (my $line = <STDIN>) {
    $line =~ s/\015?\012\z/\015\012/;
    $dkim->PRINT($line);
}
$dkim->CLOSE;
foreach my $sig ($dkim->signatures) {
    printf "%s d=%s s=%s a=%s\n", $sig->result_detail, $sig->domain, $sig->selector,
        $sig->algorithm;
}
print "RESULT ", $dkim->result, "\n";
