// Signs a file with a key of the token through Java's own PKCS#11 provider (SunPKCS11) and its
// PKCS11 KeyStore, as a Java signing application does; run as `java KiltSign.java ...` (JDK 11+
// launches a single source file without javac).
//
//   java KiltSign.java CONFIG PIN ALIAS INPUT SIGNATURE_OUT CERTIFICATE_OUT
//
// Exit 0: signed (SHA256withECDSA, DER) and the alias's certificate written (DER).
// Exit 3: the KeyStore refused the PIN; the exception people see is printed on stderr.
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;

public class KiltSign {
    public static void main(String[] args) throws Exception {
        Provider provider = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(provider);
        KeyStore store = KeyStore.getInstance("PKCS11", provider);
        try {
            store.load(null, args[1].toCharArray());
        } catch (java.io.IOException e) {
            System.err.println(e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("caused by: " + c);
            }
            System.exit(3);
        }
        PrivateKey key = (PrivateKey) store.getKey(args[2], null);
        if (key == null) {
            System.err.println("no private key under alias " + args[2]);
            System.exit(4);
        }
        Signature signature = Signature.getInstance("SHA256withECDSA", provider);
        signature.initSign(key);
        signature.update(Files.readAllBytes(Path.of(args[3])));
        Files.write(Path.of(args[4]), signature.sign());
        Files.write(Path.of(args[5]), store.getCertificate(args[2]).getEncoded());
        System.out.println("signed with " + args[2] + " through " + provider.getName());
    }
}
